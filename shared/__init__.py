"""The event library every Mawaeed service uses: contracts, store, outbox, projections, nameko glue."""
