"""Analysis: the report card, generation and its quality, attention maps, export with the exported model card, plotly
figures."""
