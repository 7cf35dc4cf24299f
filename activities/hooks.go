package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/ferrydr/ferry"
)

// maxHookOutput bounds what a hook's output adds to the run record.
const maxHookOutput = 4096

// HookInput runs one of a group's hooks with the run's context. It names
// the hook; its URL and command are read from the inventory when it runs,
// so a token in a webhook's URL never enters the workflow's history
// (invariant 7).
type HookInput struct {
	Group string     `json:"group"`
	Hook  ferry.Hook `json:"hook"`
	// Context describes the run: run_id, kind, group, point, site, ...
	Context map[string]string `json:"context"`
}

// withoutHookTargets is g as plans carry it into workflow history: its
// hooks' names, points, timeouts and policies, without their URLs and
// commands, which may hold credentials.
func withoutHookTargets(g ferry.Group) ferry.Group {
	if len(g.Hooks) == 0 {
		return g
	}
	hooks := make([]ferry.Hook, len(g.Hooks))
	for i, h := range g.Hooks {
		h.URL, h.Command = "", nil
		hooks[i] = h
	}
	g.Hooks = hooks
	return g
}

// HookResult is what a hook answered or printed.
type HookResult struct {
	Output string `json:"output,omitempty"`
}

// ErrHook is the error type of a failed hook.
const ErrHook = "hook-failed"

// RunHook runs a group's own step: a webhook gets the run's context POSTed
// as JSON; a command runs on the worker with it in FERRY_* variables. A hook
// is not assumed idempotent, so it is never retried by Temporal; the group's
// failure policy decides what happens next.
func (a *Activities) RunHook(ctx context.Context, in HookInput) (HookResult, error) {
	if in.Group != "" {
		g, err := a.Store.GetGroup(ctx, in.Group)
		if err != nil {
			return HookResult{}, fmt.Errorf("hook %s: read group %s: %w", in.Hook.Name, in.Group, err)
		}
		found := false
		for _, h := range g.Hooks {
			if h.Name == in.Hook.Name {
				in.Hook, found = h, true
			}
		}
		if !found {
			return HookResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("hook %s: group %s no longer has it", in.Hook.Name, in.Group), ErrHook, nil)
		}
	}
	timeout := time.Duration(in.Hook.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out []byte
	var err error
	switch {
	case in.Hook.URL != "":
		out, err = webhook(ctx, in.Hook.URL, in.Context)
	case len(in.Hook.Command) > 0:
		out, err = command(ctx, in.Hook.Command, in.Context)
	default:
		err = fmt.Errorf("hook %s has neither url nor command", in.Hook.Name)
	}
	res := HookResult{Output: truncate(string(out))}
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %s", timeout)
		}
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("hook %s: %v", in.Hook.Name, err), ErrHook, nil, res)
	}
	return res, nil
}

func webhook(ctx context.Context, url string, runCtx map[string]string) ([]byte, error) {
	body, err := json.Marshal(runCtx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("bad url: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ferry-hook")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// The URL may carry a token: say what failed, not where.
		return nil, fmt.Errorf("webhook call failed: %v", redactURLError(err))
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, maxHookOutput+1))
	if resp.StatusCode/100 != 2 {
		return out, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return out, nil
}

// redactURLError drops the URL from a net/http client error.
func redactURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}

func command(ctx context.Context, argv []string, runCtx map[string]string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// A tenant's command gets the run's context and a bare environment,
	// never the worker's: that holds the database URL and driver secrets
	// (invariant 7).
	var env []string
	for _, k := range []string{"PATH", "HOME", "LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(runCtx))
	for k := range runCtx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, "FERRY_"+strings.ToUpper(k)+"="+runCtx[k])
	}
	cmd.Env = env
	// Its own process group, so a timeout ends everything it started, not
	// just its first process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("command %s: %w", argv[0], err)
	}
	return out, nil
}

func truncate(s string) string {
	if len(s) > maxHookOutput {
		// Cutting at a byte may split a character: drop the half.
		return strings.ToValidUTF8(s[:maxHookOutput], "") + "…(truncated)"
	}
	return s
}
