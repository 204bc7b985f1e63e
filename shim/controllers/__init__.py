"""Controllers and admission plugins that run beside the API server."""
