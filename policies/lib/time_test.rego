package tollgate.lib.time_test

import data.tollgate.lib.time as window

office := {"days": ["Monday", "Friday"], "from_hour": 8, "to_hour": 18, "tz": "UTC"}

night := {"from_hour": 22, "to_hour": 6}

ns(s) := time.parse_rfc3339_ns(s)

test_inside_and_outside_hours if {
	window.in_window(ns("2026-11-23T08:00:00Z"), office)
	window.in_window(ns("2026-11-27T17:59:59Z"), office)
	not window.in_window(ns("2026-11-23T18:00:00Z"), office)
	not window.in_window(ns("2026-11-23T07:59:59Z"), office)
}

test_days if {
	not window.in_window(ns("2026-11-24T10:00:00Z"), office) # a Tuesday
}

test_window_across_midnight if {
	window.in_window(ns("2026-11-24T23:30:00Z"), night)
	window.in_window(ns("2026-11-24T05:59:00Z"), night)
	not window.in_window(ns("2026-11-24T12:00:00Z"), night)
}

test_time_zone if {
	berlin := object.union(office, {"tz": "Europe/Berlin"})

	# 07:30 UTC is 08:30 in Berlin in November (UTC+1).
	window.in_window(ns("2026-11-23T07:30:00Z"), berlin)
	not window.in_window(ns("2026-11-23T07:30:00Z"), office)
}

test_describe if {
	window.describe(office) == "Monday, Friday 08:00-18:00 UTC"
}
