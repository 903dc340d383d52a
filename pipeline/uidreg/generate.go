package uidreg

// The registry is generated rather than parsed at start-up so that a bad
// edit of the CSV fails the build and the package has no init work.

//go:generate go run ./internal/gen -data data -out uids_gen.go
