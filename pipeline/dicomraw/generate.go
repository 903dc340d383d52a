package dicomraw

// The dictionary's list of tags is generated from the pinned module's
// source, not parsed at start-up: the module ships no list, and a change of
// version that changes it fails the up-to-date test.

//go:generate go run ./internal/gendict -out dict_gen.go
