"""Tier tools: `tally`, the operator command, as the installed console script; `bin/dev`
as a newcomer runs it; the embedded servers of devtools/localenv.py."""
