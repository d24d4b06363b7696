"""The headers of every payer page providers-svc serves (the sandbox bank's, the simulators', Octo's
return page): the link is the payer's credential, so nothing caches it or passes it on as a referrer,
and a page that runs no script of its own is never framed, nor loads anything from elsewhere."""

PAYER_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
