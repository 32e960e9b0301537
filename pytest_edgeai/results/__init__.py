"""Result records, the run store, and (later) comparison between runs."""
