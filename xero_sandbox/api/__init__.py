"""The sandbox's HTTP routes, one module per Xero API and one for our admin API."""
