"""The pages people use, rendered by the suite itself: the booking site, the live ticket, the kiosk, the counter
console, the waiting-room display and the centre manager's page. Jinja2 templates translated with gettext
catalogues (Arabic first, right to left; English with ?lang=en), forms that work without JavaScript, small
hand-written scripts that only make them nicer, and no request to any other host. The pages speak to the rest of
the suite only through its public HTTP API (client.py), as any other client would, with the person's own token."""
