"""Editorial vetting: workflow, compliance rules and lint, waivers, audit, history, diff."""
