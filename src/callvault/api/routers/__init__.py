"""One router per domain; each route parses, passes the gate, calls the domain, shapes the reply."""
