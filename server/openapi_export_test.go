package server

// OpenAPITypes names, for openapi_test.go, the Go type behind each schema of
// server/openapi.json that the server reads or writes, so that a field
// added to (or removed from) a type without the document fails a test.
// Answers (response: true) must also require exactly the fields Go always
// writes (those without omitempty). Values are zero values of the types.
var OpenAPITypes = []struct {
	Schema   string
	Value    any
	Response bool
}{
	{"Problem", problem{}, true},
	{"Whoami", whoamiAnswer{}, true},
	{"StartRunRequest", startRunRequest{}, false},
	{"RunOptions", runOptions{}, false},
	{"StartedRun", startRunResponse{}, true},
	{"DryRunResult", dryRunResponse{}, true},
	{"DrillScheduleRequest", drillScheduleRequest{}, false},
	{"DrillSchedule", scheduleItem{}, true},
	{"ScheduledRun", scheduledRun{}, true},
	{"ReplicaStatus", replicaStatus{}, true},
	{"CreateTokenRequest", createTokenRequest{}, false},
	{"CreatedToken", createdToken{}, true},
}
