"""The local-stack toolkit of a checkout, for bin/dev, the tests, the benchmarks and the
chaos run (none imports another's modules; all import this): the Procfile's lines
(procfile), processes in their own groups (processes, worker), private PostgreSQL and
Redis (localenv, servers), webhook receivers (receiver), signed Stripe events
(stripe_events), waiting (waiting) and percentiles (stats). Not part of the installed
package, nor of the image."""
