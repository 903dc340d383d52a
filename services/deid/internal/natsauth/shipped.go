package natsauth

//go:generate go run ./gen ../../../../deploy/compose/nats-auth.conf ../../../../deploy/k8s/nats/nats.yaml

import (
	"errors"
	"strings"
)

// ReplaceConfigMapKey replaces the block literal of key ("  key: |" and
// the lines indented under it) in a ConfigMap's YAML with text.
func ReplaceConfigMapKey(yaml, key, text string) (string, error) {
	lines := strings.SplitAfter(yaml, "\n")
	head := "  " + key + ": |"
	start := -1
	for i, l := range lines {
		if strings.TrimRight(l, "\n") == head {
			start = i
			break
		}
	}
	if start < 0 {
		return "", errors.New("no " + head + " in the manifest")
	}
	end := start + 1
	for end < len(lines) && (strings.HasPrefix(lines[end], "    ") || strings.TrimSpace(lines[end]) == "") &&
		!strings.HasPrefix(lines[end], "---") {
		end++
	}
	// Blank lines at the end belong to what follows.
	for end > start+1 && strings.TrimSpace(lines[end-1]) == "" {
		end--
	}
	var b strings.Builder
	for _, l := range lines[:start+1] {
		b.WriteString(l)
	}
	for _, l := range strings.SplitAfter(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.TrimSpace(l) == "" {
			b.WriteString("\n")
			continue
		}
		b.WriteString("    " + strings.TrimSuffix(l, "\n") + "\n")
	}
	for _, l := range lines[end:] {
		b.WriteString(l)
	}
	return b.String(), nil
}

// ConfigMapKey reads the block literal of key back out of a ConfigMap's
// YAML (the inverse of ReplaceConfigMapKey).
func ConfigMapKey(yaml, key string) (string, error) {
	lines := strings.SplitAfter(yaml, "\n")
	head := "  " + key + ": |"
	for i, l := range lines {
		if strings.TrimRight(l, "\n") != head {
			continue
		}
		var b strings.Builder
		for _, l := range lines[i+1:] {
			if strings.TrimSpace(l) == "" {
				b.WriteString("\n")
				continue
			}
			if !strings.HasPrefix(l, "    ") {
				break
			}
			b.WriteString(strings.TrimPrefix(l, "    "))
		}
		return strings.TrimRight(b.String(), "\n") + "\n", nil
	}
	return "", errors.New("no " + head + " in the manifest")
}
