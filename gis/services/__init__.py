"""The rules: assignment, dispatch, workflow, planning, statistics. Services take a session and
never commit; the caller owns the transaction."""
