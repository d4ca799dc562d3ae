"""Music as plain data and pure functions, no torch: scores, theory, tokens, piano rolls,
steps, forms, typed notes, motifs, and MIDI in (hostile uploads) and out (our own files)."""
