package jobs

import "github.com/medallion-dev/medallion/internal/config"

// Select resolves targets like Plan but without their upstream tables:
// under the scheduler, `silver: {after: bronze}` runs only silver's tables,
// bronze having just run on its own schedule.
func Select(p *config.Pipeline, targets []string) ([]Job, error) {
	all := allJobs(p)
	want := make(map[string]bool)
	for _, t := range targets {
		refs, err := resolve(p, all, t)
		if err != nil {
			return nil, err
		}
		for _, r := range refs {
			want[r.String()] = true
		}
	}
	var out []Job
	for _, j := range all {
		if want[j.Table.String()] {
			out = append(out, j)
		}
	}
	return out, nil
}
