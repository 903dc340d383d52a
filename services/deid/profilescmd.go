package main

import (
	"fmt"
	"io"

	"github.com/dicomdeid/dicomdeid/profiles"
)

func profilesCmd(args []string, stdout, stderr io.Writer) int {
	var l profiles.Loader
	if len(args) == 0 {
		fmt.Fprintln(stderr, "deid profiles: want list, show NAME|FILE or check FILE")
		return exitUsage
	}
	switch args[0] {
	case "list":
		for _, n := range l.Builtin() {
			p, err := l.Load(n)
			if err != nil {
				fmt.Fprintf(stderr, "deid profiles: built-in %s: %v\n", n, err)
				return exitRejected
			}
			fmt.Fprintf(stdout, "%-16s %s\n", n, p.Description)
		}
		return exitOK
	case "show":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "deid profiles show: want one NAME or FILE")
			return exitUsage
		}
		p, err := l.Load(args[1])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitRejected
		}
		fmt.Fprint(stdout, profiles.Show(p))
		return exitOK
	case "check":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "deid profiles check: want one FILE")
			return exitUsage
		}
		if err := l.Check(args[1]); err != nil {
			fmt.Fprintln(stderr, err)
			return exitRejected
		}
		fmt.Fprintf(stdout, "%s: ok\n", args[1])
		return exitOK
	}
	fmt.Fprintf(stderr, "deid profiles: unknown subcommand %q\n", args[0])
	return exitUsage
}
