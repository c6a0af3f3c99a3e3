package generate

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// ---- energy: smart meters, one reading per meter per second ----

const energyMeters = 8

type energy struct {
	r     *rand.Rand
	start int64
	cal   calendar
	cols  []column
	ids   [energyMeters]string
	base  [energyMeters]int64 // typical usage in hundredths
}

func newEnergy(r *rand.Rand, start int64) *energy {
	g := &energy{r: r, start: start - start%1e6,
		cols: newColumns("timestamp", true, "meter_id", true, "energy_usage", false)}
	for m := range g.ids {
		g.ids[m] = fmt.Sprintf("meter-%03d", m+1)
		g.base[m] = 500 + r.Int64N(3500)
	}
	return g
}

func (g *energy) columns() []column { return g.cols }

func (g *energy) slotTime(s int64) int64 { return g.start + s/energyMeters*1e6 }

func (g *energy) fill(rec *record, s, t int64) {
	m := s % energyMeters
	st := rec.mark()
	rec.buf = g.cal.appendSQL(rec.buf, t)
	rec.done(st)
	rec.add(g.ids[m])
	var v int64
	if g.r.IntN(100) == 0 { // a spike: an anomaly above 100
		v = 10001 + g.r.Int64N(40000)
	} else {
		v = max(0, g.base[m]+int64(g.r.NormFloat64()*300))
	}
	st = rec.mark()
	rec.buf = appendFixed2(rec.buf, v)
	rec.done(st)
}

func (g *energy) indexes() fieldIndexes { return fieldIndexes{required: 1, number: 2, text: 1} }

func (g *energy) outOfRange(rec *record, r *rand.Rand) { rec.prefix(2, "-") }

var badSQLTimes = []string{"2024-13-45 25:61:00", "not a timestamp", "1704067200", "2024-02-30 12:00:00", "01/02/2024 10:00"}

func (g *energy) badTimestamp(rec *record, r *rand.Rand) {
	rec.set(0, badSQLTimes[r.IntN(len(badSQLTimes))])
}

// ---- ecommerce: click and purchase events from a pool of live sessions ----

type product struct {
	id, name, category, price string
}

type session struct {
	user, id, device string
}

type ecommerce struct {
	r        *rand.Rand
	start    int64
	seed     uint64
	cal      calendar
	cols     []column
	products []product
	sessions [64]session
}

var (
	eventTypes = []struct {
		name   string
		weight int
	}{{"view", 70}, {"add_to_cart", 13}, {"remove_from_cart", 4}, {"add_to_wishlist", 5}, {"purchase", 8}}
	eventTypeTable [100]uint8
	devices        = []string{"mobile", "mobile", "mobile", "mobile", "mobile", "desktop", "desktop", "desktop", "tablet", "smart_tv"}
)

func init() {
	i := 0
	for t, e := range eventTypes {
		for range e.weight {
			eventTypeTable[i] = uint8(t)
			i++
		}
	}
}

// catalogue is fixed (not seeded): the same product always has the same name.
func catalogue() []product {
	type cat struct {
		name  string
		items []string
	}
	cats := []cat{
		{"Electronics", []string{"Wireless Mouse", "USB-C Cable, 2m", `27" 4K Monitor`, "Bluetooth Speaker", "Noise Cancelling Headphones", "Mechanical Keyboard", "Webcam HD", `Tablet 10.1"`, "Phone Charger", "Smart Watch"}},
		{"Home & Kitchen", []string{"Coffee Maker", "Chef's Knife, 8 inch", "Non-Stick Pan", "Blender", "Tea Kettle", "Cutting Board", "Toaster", "Dish Rack", "Air Fryer", "Salad Spinner"}},
		{"Clothing", []string{`"Classic" T-Shirt, Black`, "Denim Jacket", "Running Shorts", "Wool Socks", "Rain Coat", "Hoodie", "Chinos", "Summer Dress", "Baseball Cap", "Leather Belt"}},
		{"Books", []string{"The Data Engineer", "SQL Cookbook", "Streaming Systems", "Designing Data-Intensive Applications", "Go in Action", "Cooking for One", "Travel Guide: Lisbon", "Poems, Collected", "Mystery at Dawn", "Atlas of Birds"}},
		{"Sports", []string{"Yoga Mat", "Dumbbell Set", "Tennis Racket", "Football", "Cycling Gloves", "Jump Rope", "Water Bottle", "Climbing Chalk", "Swim Goggles", "Resistance Bands"}},
		{"Beauty", []string{"Face Cream", "Shampoo", "Lip Balm", "Sunscreen SPF 50", "Hair Dryer", "Nail Kit", "Perfume", "Body Lotion", "Beard Oil", "Makeup Brushes"}},
		{"Toys", []string{"Building Blocks", "Puzzle 1000 pcs", "Toy Car", "Board Game", "Plush Bear", "Kite", "Doll House", "Train Set", "Water Gun", `Robot "Rex"`}},
	}
	var out []product
	n := 0
	for _, c := range cats {
		for j, it := range c.items {
			n++
			cents := 299 + (n*7919+j*104729)%49700
			for v := 1; v <= 2; v++ {
				name := it
				if v == 2 {
					name = it + " (Pro)"
					cents = cents*3/2 + 1
				}
				out = append(out, product{
					id:       fmt.Sprintf("P%05d", 10000+len(out)*37),
					name:     name,
					category: c.name,
					price:    string(appendFixed2(nil, int64(cents))),
				})
			}
		}
	}
	return out
}

func newEcommerce(r *rand.Rand, start int64, seed uint64) *ecommerce {
	g := &ecommerce{r: r, start: start - start%1e6, seed: seed, products: catalogue(),
		cols: newColumns("event_id", true, "user_id", true, "event_type", true, "product_id", true,
			"product_name", true, "product_category", true, "product_price", false, "quantity", false,
			"event_timestamp", true, "session_id", true, "device_type", true)}
	for i := range g.sessions {
		g.newSession(i)
	}
	return g
}

func (g *ecommerce) newSession(i int) {
	var b []byte
	b = appendHex(b, g.r.Uint64(), 12)
	g.sessions[i] = session{
		user:   "u_" + strconv.Itoa(100000+g.r.IntN(900000)),
		id:     string(b),
		device: devices[g.r.IntN(len(devices))],
	}
}

func (g *ecommerce) columns() []column { return g.cols }

// slotTime: ten events a second on average, with up to 3 s of jitter so the
// stream is mostly, not strictly, in order.
func (g *ecommerce) slotTime(s int64) int64 {
	j := int64(splitmix64(uint64(s)^g.seed) % 3_000_000)
	t := g.start + s*100_000 + j
	return t - t%1e6
}

func (g *ecommerce) fill(rec *record, s, t int64) {
	r := g.r
	k := r.IntN(len(g.sessions))
	if r.IntN(25) == 0 {
		g.newSession(k)
	}
	se := &g.sessions[k]
	st := rec.mark()
	rec.buf = appendUUID(rec.buf, r.Uint64(), r.Uint64())
	rec.done(st)
	rec.add(se.user)
	et := eventTypeTable[r.IntN(100)]
	rec.add(eventTypes[et].name)
	p := &g.products[r.IntN(len(g.products))]
	rec.add(p.id)
	rec.add(p.name)
	rec.add(p.category)
	rec.add(p.price)
	q := 1
	if name := eventTypes[et].name; (name == "purchase" || name == "add_to_cart") && r.IntN(5) == 0 {
		q = 2 + r.IntN(4)
	}
	st = rec.mark()
	rec.buf = strconv.AppendInt(rec.buf, int64(q), 10)
	rec.done(st)
	st = rec.mark()
	rec.buf = g.cal.appendSQL(rec.buf, t)
	rec.done(st)
	rec.add(se.id)
	rec.add(se.device)
}

func (g *ecommerce) indexes() fieldIndexes { return fieldIndexes{required: 1, number: 6, text: 4} }

func (g *ecommerce) outOfRange(rec *record, r *rand.Rand) {
	if r.IntN(2) == 0 {
		rec.prefix(6, "-") // a negative price
	} else {
		rec.set(7, "-"+strconv.Itoa(1+r.IntN(3))) // a negative quantity
	}
}

func (g *ecommerce) badTimestamp(rec *record, r *rand.Rand) {
	rec.set(8, badSQLTimes[r.IntN(len(badSQLTimes))])
}

func appendHex(dst []byte, v uint64, digits int) []byte {
	for i := digits - 1; i >= 0; i-- {
		dst = append(dst, hexDigits[(v>>(uint(i)*4))&0xf])
	}
	return dst
}

// appendUUID appends a version 4 UUID made of hi and lo.
func appendUUID(dst []byte, hi, lo uint64) []byte {
	hi = hi&^0xf000 | 0x4000               // version 4
	lo = lo&^(0xc<<60) | 0x8<<60           // variant 10
	dst = appendHex(dst, hi>>32, 8)        // 8
	dst = append(dst, '-')                 //
	dst = appendHex(dst, hi>>16&0xffff, 4) // 4
	dst = append(dst, '-')
	dst = appendHex(dst, hi&0xffff, 4)
	dst = append(dst, '-')
	dst = appendHex(dst, lo>>48, 4)
	dst = append(dst, '-')
	return appendHex(dst, lo&0xffffffffffff, 12)
}

// ---- sensor: BME280 temperature/humidity/pressure at 400 Hz per device ----

const (
	sensorDevices  = 4
	sensorPeriodUS = 2500 // 400 Hz
)

type sensor struct {
	r     *rand.Rand
	start int64
	cal   calendar
	cols  []column
	ids   [sensorDevices]string
	// state in hundredths: °C, %RH, hPa
	temp, hum, pres [sensorDevices]int64
}

func newSensor(r *rand.Rand, start int64) *sensor {
	g := &sensor{r: r, start: start - start%1000,
		cols: newColumns("device_id", true, "timestamp", true, "temperature", false, "humidity", false, "pressure", false)}
	for d := range g.ids {
		g.ids[d] = fmt.Sprintf("bme280-%02d", d+1)
		g.temp[d] = 2000 + r.Int64N(500)
		g.hum[d] = 3500 + r.Int64N(2000)
		g.pres[d] = 100800 + r.Int64N(1000)
	}
	return g
}

func (g *sensor) columns() []column { return g.cols }

func (g *sensor) slotTime(s int64) int64 {
	t := g.start + s/sensorDevices*sensorPeriodUS
	return t - t%1000 // written with millisecond precision
}

// walk moves v a small random step, pulled back towards mid.
func walk(r *rand.Rand, v, mid, step int64) int64 {
	d := r.Int64N(2*step+1) - step
	if v > mid {
		d -= r.Int64N(2)
	} else if v < mid {
		d += r.Int64N(2)
	}
	return v + d
}

func (g *sensor) fill(rec *record, s, t int64) {
	d := s % sensorDevices
	g.temp[d] = walk(g.r, g.temp[d], 2250, 2)
	g.hum[d] = walk(g.r, g.hum[d], 4500, 3)
	g.pres[d] = walk(g.r, g.pres[d], 101325, 2)
	rec.add(g.ids[d])
	st := rec.mark()
	rec.buf = g.cal.appendRFC3339Milli(rec.buf, t)
	rec.done(st)
	for _, v := range [...]int64{g.temp[d], g.hum[d], g.pres[d]} {
		st = rec.mark()
		rec.buf = appendFixed2(rec.buf, v)
		rec.done(st)
	}
}

func (g *sensor) indexes() fieldIndexes { return fieldIndexes{required: 0, number: 2, text: 0} }

func (g *sensor) outOfRange(rec *record, r *rand.Rand) {
	rec.set(3, string(appendFixed2(nil, 10050+r.Int64N(5000)))) // humidity above 100 %
}

var badRFC3339 = []string{"2024-01-01T25:61:00.000Z", "not a timestamp", "1704067200000", "2024-02-30T12:00:00.000Z", "01/02/2024 10:00:00"}

func (g *sensor) badTimestamp(rec *record, r *rand.Rand) {
	rec.set(1, badRFC3339[r.IntN(len(badRFC3339))])
}

// ---- turnstile: cumulative subway turnstile counters every 4 hours ----

// TurnstileHeader is the header line of turnstile CSV, as messy as the MTA's
// own files: "C/A" and a long run of spaces after EXITS.
const TurnstileHeader = "C/A,UNIT,SCP,STATION,LINENAME,DIVISION,DATE,TIME,DESC,ENTRIES,EXITS" + exitsPadding

const exitsPadding = "                                                               " // 63 spaces

type scp struct {
	ca, unit, scp, station, lines, division string
	rate                                    int64 // people per 4 hours at peak
}

type turnstile struct {
	r            *rand.Rand
	start        int64
	cal          calendar
	cols         []column
	scps         []scp
	entries      []int64
	exits        []int64
	periodMicros int64
}

var stations = []struct{ name, lines, division string }{
	{"59 ST", "NQR456W", "BMT"}, {"5 AV/59 ST", "NQRW", "BMT"}, {"57 ST-7 AV", "NQRW", "BMT"},
	{"49 ST", "NQRW", "BMT"}, {"TIMES SQ-42 ST", "1237ACENQRSW", "IRT"}, {"34 ST-HERALD SQ", "BDFMNQRW", "BMT"},
	{"28 ST", "NRW", "BMT"}, {"23 ST", "NRW", "BMT"}, {"14 ST-UNION SQ", "LNQR456W", "BMT"},
	{"8 ST-NYU", "NRW", "BMT"}, {"PRINCE ST", "NRW", "BMT"}, {"CANAL ST", "JNQRZ6W", "BMT"},
	{"CITY HALL", "NRW", "BMT"}, {"CORTLANDT ST", "NRW", "BMT"}, {"RECTOR ST", "NRW", "BMT"},
	{"WHITEHALL S-FRY", "R1W", "BMT"}, {"COURT SQ", "EGM7", "IND"}, {"34 ST-PENN STA", "ACE", "IND"},
	{"42 ST-PORT AUTH", "ACENQRS1237W", "IND"}, {"GRD CNTRL-42 ST", "4567S", "IRT"}, {"86 ST", "456", "IRT"},
	{"125 ST", "456", "IRT"}, {"FULTON ST", "2345ACJZ", "IRT"}, {"WALL ST", "23", "IRT"},
	{"BOWLING GREEN", "45", "IRT"}, {"BROOKLYN BRIDGE", "456JZ", "IRT"}, {"96 ST", "123", "IRT"},
	{"72 ST", "123", "IRT"}, {"168 ST", "AC1", "IND"}, {"W 4 ST-WASH SQ", "ABCDEFM", "IND"},
	{"145 ST", "ABCD", "IND"}, {"JAY ST-METROTECH", "ACFR", "IND"}, {"ATL AV-BARCLAY", "2345BDNQR", "IRT"},
	{"JUNCTION BLVD", "7", "IRT"}, {"FLUSHING-MAIN", "7", "IRT"}, {"CONEY IS-STILLW", "DFNQ", "BMT"},
}

// hourly share of peak traffic for the 4-hour period ending at 00, 04, ... 20 h.
var periodShare = [6]int64{25, 5, 35, 100, 80, 100}

func newTurnstile(r *rand.Rand, start int64) *turnstile {
	g := &turnstile{r: r, start: start - start%1e6, periodMicros: 4 * 3600 * 1e6,
		cols: newColumns("C/A", true, "UNIT", true, "SCP", true, "STATION", true, "LINENAME", true,
			"DIVISION", true, "DATE", true, "TIME", true, "DESC", true, "ENTRIES", false, "EXITS"+exitsPadding, false)}
	booth := 0
	for k, st := range stations {
		for b := 0; b < 1+k%2; b++ {
			booth++
			ca := fmt.Sprintf("%c%03d", 'A'+byte(booth/40), booth%40*3+2)
			unit := fmt.Sprintf("R%03d", 10+k*7%490)
			for n := 0; n < 2+(k+b)%4; n++ {
				g.scps = append(g.scps, scp{ca: ca, unit: unit, scp: fmt.Sprintf("%02d-00-%02d", b, n),
					station: st.name, lines: st.lines, division: st.division, rate: 100 + int64((k*31+n*17)%600)})
			}
		}
	}
	g.entries = make([]int64, len(g.scps))
	g.exits = make([]int64, len(g.scps))
	for i := range g.scps {
		g.entries[i] = r.Int64N(10_000_000)
		g.exits[i] = r.Int64N(8_000_000)
	}
	return g
}

func (g *turnstile) columns() []column { return g.cols }

func (g *turnstile) slotTime(s int64) int64 {
	return g.start + s/int64(len(g.scps))*g.periodMicros
}

func (g *turnstile) fill(rec *record, s, t int64) {
	i := s % int64(len(g.scps))
	c := &g.scps[i]
	rec.add(c.ca)
	rec.add(c.unit)
	rec.add(c.scp)
	rec.add(c.station)
	rec.add(c.lines)
	rec.add(c.division)
	st := rec.mark()
	rec.buf = g.cal.appendMDY(rec.buf, t)
	rec.done(st)
	st = rec.mark()
	sec, _ := g.cal.split(t)
	rec.buf = appendClock(rec.buf, sec)
	rec.done(st)
	if g.r.IntN(100) == 0 {
		rec.add("RECOVR AUD")
	} else {
		rec.add("REGULAR")
	}
	share := periodShare[sec/(4*3600)%6]
	g.entries[i] += c.rate*share/100 + g.r.Int64N(c.rate/4+1)
	g.exits[i] += c.rate*share*8/1000 + g.r.Int64N(c.rate/4+1)
	st = rec.mark()
	rec.buf = strconv.AppendInt(rec.buf, g.entries[i], 10)
	rec.done(st)
	st = rec.mark()
	rec.buf = strconv.AppendInt(rec.buf, g.exits[i], 10)
	rec.done(st)
}

func (g *turnstile) indexes() fieldIndexes { return fieldIndexes{required: 2, number: 9, text: 3} }

func (g *turnstile) outOfRange(rec *record, r *rand.Rand) { rec.prefix(9, "-") }

func (g *turnstile) badTimestamp(rec *record, r *rand.Rand) {
	if r.IntN(2) == 0 {
		rec.set(6, []string{"13/45/2024", "2024-01-02", "not a date"}[r.IntN(3)])
	} else {
		rec.set(7, []string{"25:61:00", "4pm", "24:00:99"}[r.IntN(3)])
	}
}
