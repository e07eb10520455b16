"""Exchange access: the MAX REST v3 client (:mod:`aimax.exchange.max`) and a local
MAX-compatible simulator (:mod:`aimax.exchange.simulator`)."""

__all__: list[str] = []
