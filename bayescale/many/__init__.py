"""Many fits: one law over every group of a table (sweep), resumable, on any executor."""
