package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/medallion-dev/medallion/layers/raw"
)

// checkInputFormat refuses a file whose start cannot be in the source's
// declared format (a CSV file into an ndjson source), naming file and line,
// before anything of it is landed. Bad lines among good ones are not its
// business: bronze quarantines those.
func checkInputFormat(path, source, format string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, raw.SniffSize)
	n, err := io.ReadFull(f, head)
	complete := errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
	if err != nil && !complete {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return formatError(path, source, format, raw.CheckFormat(head[:n], complete, format))
}

// checkStdinFormat is checkInputFormat for stdin: it returns the reader to
// land from, which still holds the bytes it looked at.
func checkStdinFormat(stdin io.Reader, source, format string) (io.Reader, error) {
	br := bufio.NewReaderSize(stdin, raw.SniffSize)
	head, err := br.Peek(raw.SniffSize)
	complete := errors.Is(err, io.EOF)
	if err != nil && !complete && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	return br, formatError("stdin", source, format, raw.CheckFormat(head, complete, format))
}

func formatError(name, source, format string, err error) error {
	var fe *raw.FormatError
	if !errors.As(err, &fe) {
		return err
	}
	return fmt.Errorf("%s:%d: %s; source %s is format: %s, so nothing was landed (convert the file, or ingest it into a source of its format)",
		name, fe.Line, fe.Msg, source, format)
}
