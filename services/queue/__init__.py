"""The queue service: the waiting rooms of the service centres. A person checks in with a booking, or as a
walk-in where the branch takes them, and gets a numbered ticket; counters open for services and call tickets in a
fair order (priority groups, due appointments, walk-ins); a visit ends served, a no-show or closed out with the
day, and may be rated. The rules are pure functions over a branch's day (domain.py, whose `evolve` is the one
place a day changes); commands.py decides with them and appends to the day's stream; projection.py keeps the
tables; view.py shows a waiting room; replay.py rebuilds the rooms from the log; service.py is the nameko glue."""
