"""Factor analysis: forward returns, quantiles, IC, quantile portfolios, tear sheet."""
