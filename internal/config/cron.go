package config

import (
	"errors"
	"fmt"

	"github.com/medallion-dev/medallion/internal/cron"
)

// ValidateCron checks a schedule spec with internal/cron, the one cron
// parser (the scheduler computes due times with the same code): "@every
// <duration>" (30s, 1m, 1h, 1d), @hourly, @daily (@midnight), @weekly,
// @monthly, @yearly (@annually), or five cron fields "minute hour
// day-of-month month day-of-week", each *, a value, a range a-b, a list a,b
// and an optional step /n; months and days of week may be named (jan, mon),
// and day of week 0 and 7 are both Sunday. Specs that can never fire
// ("0 0 30 2 *") are refused. An unknown @-word gets a did-you-mean hint.
func ValidateCron(spec string) error {
	_, err := cron.Parse(spec)
	if ud, ok := errors.AsType[*cron.UnknownDescriptorError](err); ok {
		return fmt.Errorf("%w%s", err, didYouMean(ud.Name, cron.Descriptors()))
	}
	return err
}
