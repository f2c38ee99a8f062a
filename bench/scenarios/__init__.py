"""One module per scenario; each exposes an async `run(...)` returning a JSON-able dict."""
