# METADATA
# title: Time windows
# description: |
#   Change windows by weekday and hour in a time zone, e.g.
#   {"days": ["Monday", "Tuesday"], "from_hour": 8, "to_hour": 18, "tz": "Europe/Berlin"}.
#   Evaluated with the host's time.clock/time.weekday builtins in Tollgate's WebAssembly runtime.
package tollgate.lib.time

# True if ns (nanoseconds since the epoch) falls inside the window: on one of its days, at or
# after from_hour and before to_hour (a window may wrap past midnight: from 22 to 6).
in_window(ns, window) if {
	at := [ns, object.get(window, "tz", "UTC")]
	time.weekday(at) in object.get(window, "days", all_days)
	[hour, _, _] := time.clock(at)
	hour_in(hour, window.from_hour, window.to_hour)
}

hour_in(h, from, to) if {
	from <= to
	h >= from
	h < to
}

hour_in(h, from, to) if {
	from > to
	h >= from
}

hour_in(h, from, to) if {
	from > to
	h < to
}

all_days := ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

# How a window reads in a reason: "Monday-Friday 08:00-18:00 Europe/Berlin".
describe(window) := sprintf("%s %02d:00-%02d:00 %s", [
	concat(", ", object.get(window, "days", all_days)),
	window.from_hour, window.to_hour,
	object.get(window, "tz", "UTC"),
])
