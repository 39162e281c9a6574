# Sourced by run.sh and scale.sh: publish_run OUT DEST puts a run's files
# in the committed directory DEST (results/latest, results/scale).  Only
# files go: DEST's own top-level files are replaced, while what was
# written by hand (results/latest/profile.md) and the other runs kept in
# its subdirectories (results/scale/mem-f7/) stay.  A whole-directory
# replace deleted both (2026-12-06).
publish_run() {
	local out=$1 dest=$2

	mkdir -p "$dest"
	find "$dest" -maxdepth 1 -type f ! -name profile.md -delete
	cp "$out"/* "$dest"/
}
