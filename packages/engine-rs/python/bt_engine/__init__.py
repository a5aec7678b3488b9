from bt_engine._engine import __version__

__all__ = ["__version__"]
