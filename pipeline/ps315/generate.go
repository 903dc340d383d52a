package ps315

// The tables are generated, not parsed at start-up, so that a malformed or
// changed CSV fails the build (and the up-to-date test) instead of a running
// service, and so that the package has no init work.

//go:generate go run ./internal/gen -data data -out tables_gen.go
