package bronze

import "testing"

// TestReasonClass: the reasons bronze writes fall into the classes
// `medallion replay --reason` takes.
func TestReasonClass(t *testing.T) {
	for reason, want := range map[string]string{
		`"smart_tv" is not one of desktop, mobile`:                                         "accepted",
		`"abc" is not a double`:                                                            "type",
		`"1.5" is not an integer`:                                                          "type",
		`"x" is not a timestamp (want 2006-01-02 15:04:05)`:                                "type",
		`-1 is below the minimum 0`:                                                        "range",
		`"99999999999999999999" is out of range for int64`:                                 "range",
		`"1.234" does not fit decimal(10,2) without rounding (more than 2 decimal places)`: "range",
		`"NaN" is not a finite double (allow_nan: true accepts NaN and infinities)`:        "range",
		`"ab" does not match ^[a-z]{3}$`:                                                   "regex",
		`required value is empty or missing`:                                               "required",
		`invalid JSON`:                                                                     "json",
		`not a JSON object`:                                                                "json",
		`too many columns: expected 3, found 4`:                                            "csv",
		`malformed quoting: a quote inside an unquoted value or an unterminated quote`:     "csv",
		`invalid UTF-8`:                                                                    "encoding",
		`line longer than 1048576 bytes`:                                                   "encoding",
		`something else`:                                                                   "other",
	} {
		if got := ReasonClass(reason); got != want {
			t.Errorf("ReasonClass(%q) = %q, want %q", reason, got, want)
		}
	}
	o := ReplayOptions{Reason: "TYPE"}
	if !o.keeps(`"abc" is not a double`, "b1") || o.keeps(`-1 is below the minimum 0`, "b1") {
		t.Error("--reason TYPE: the class match should ignore case")
	}
	o = ReplayOptions{Reason: "smart", Batch: "b2"}
	if o.keeps(`"smart_tv" is not one of a`, "b1") || !o.keeps(`"smart_tv" is not one of a`, "b2") {
		t.Error("--reason smart --batch b2: both filters should apply")
	}
}
