# shellcheck shell=bash
# The release selection as cuda-ci's flags (and the Dagger functions'), from the workflow's inputs,
# which reach the script only through env: TAG, COMPONENT (empty for a workflow of one unit),
# RELEASE_ACTION (a rehearsal builds REHEARSAL_REF, default main's head, as if TAG pointed at it).
# Sourced by every job that names the release: preflight, plan, the wheel jobs, assemble.
selection=(--tag "$TAG")
if [ -n "${COMPONENT:-}" ]; then selection+=(--component "$COMPONENT"); fi
if [ "$RELEASE_ACTION" = "rehearsal" ]; then
  selection+=(--rehearse)
  if [ -n "${REHEARSAL_REF:-}" ]; then selection+=(--ref "$REHEARSAL_REF"); fi
fi
