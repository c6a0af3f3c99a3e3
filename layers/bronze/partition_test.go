package bronze

import "testing"

func TestISOYear(t *testing.T) {
	cases := map[string]string{
		"2024-03-01":                    "2024-03-01",
		"0001-01-01":                    "0001-01-01",
		"0001-06-01 (BC)":               "0000-06-01",
		"0045-03-15 (BC)":               "-0044-03-15",
		"10001-03-15 (BC)":              "-10000-03-15",
		"0045-03-15 (BC) 12:00:00+00":   "-0044-03-15 12:00:00+00",
		"0002-12-31 (BC) 23:59:59.5+00": "-0001-12-31 23:59:59.5+00",
		"2024-01-01 10:00:00+00":        "2024-01-01 10:00:00+00",
		"infinity":                      "infinity",
		"x (BC)":                        "x (BC)",
	}
	for in, want := range cases {
		if got := isoYear(in); got != want {
			t.Errorf("isoYear(%q) = %q, want %q", in, got, want)
		}
	}
}
