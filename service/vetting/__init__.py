"""Editorial vetting: workflow, compliance rules, waivers, audit, history and diff."""
