package main

import (
	"errors"
	"strings"
	"syscall"

	"github.com/medallion-dev/medallion/internal/humanize"
)

// errorLine is the one line a command prints for err: the message with its
// root cause (humanize.FirstLine keeps the lines a "...:" announces) and,
// when the cause is one users meet, a hint saying what to check.
func errorLine(err error) string {
	line := humanize.FirstLine(err)
	if h := hintFor(err, line); h != "" && !strings.Contains(line, "(hint:") {
		line += " (hint: " + h + ")"
	}
	return line
}

// hintFor names what to check for the usual root causes of a failed
// connection; "" when there is nothing better to say than the message.
func hintFor(err error, line string) string {
	msg := strings.ToLower(err.Error())
	pg := strings.Contains(msg, "postgres") || strings.Contains(msg, "mirror")
	s3 := strings.Contains(msg, "bucket") || strings.Contains(msg, "s3")
	target, where := "the server", ""
	switch {
	case pg:
		target, where = "PostgreSQL", " It is postgres: in the pipeline file, often ${DATABASE_URL}."
	case s3:
		target, where = "the S3 server", " It is s3.endpoint in the pipeline file."
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(msg, "connection refused"):
		return "is " + target + " running at that host and port?" + where
	case strings.Contains(msg, "no such host"):
		return "the host name does not resolve: check the address of " + target + where
	case strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "deadline exceeded"):
		return "no answer in time: is " + target + " reachable (address, firewall)?" + where
	case pg && strings.Contains(msg, "password authentication failed"):
		return "check the user and password" + where
	case pg && strings.Contains(msg, "database") && strings.Contains(msg, "does not exist"):
		return "create that database, or name another one" + where
	case strings.Contains(msg, "no space left on device"):
		return "the disk is full: free space, or move duckdb.temp_dir or cache:"
	case strings.Contains(msg, "permission denied") && !strings.Contains(line, "permission denied for"):
		return "the user running medallion may not use that file or folder"
	}
	return ""
}
