package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/cli"
	"github.com/ferrydr/ferry/config"
	"github.com/ferrydr/ferry/store"
)

// devTokenName names the admin token `ferry dev` makes at each start.
const devTokenName = "ferry-dev"

// bootstrapper is `ferry token bootstrap`: the first admin token of an
// install, made directly in its database (FERRY_DATABASE_URL), since the
// API needs a token to make one.
func bootstrapper(cfg config.Config) cli.BootstrapFunc {
	return func(ctx context.Context, name string, force bool) (ferry.Token, string, error) {
		st, err := openStore(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return ferry.Token{}, "", err
		}
		defer st.Close()
		t, secret, hash, err := ferry.NewToken(ferry.Token{Name: name, Role: ferry.RoleAdmin, CreatedBy: "bootstrap"}, time.Now())
		if err != nil {
			return ferry.Token{}, "", err
		}
		if err := st.BootstrapToken(ctx, t, hash, force); err != nil {
			return ferry.Token{}, "", err
		}
		return t, secret, nil
	}
}

// devToken revokes the admin token the last `ferry dev` made and makes a
// new one, so each start prints a token that works and the old one stops.
func devToken(ctx context.Context, st *store.Store) (string, error) {
	p := ferry.Page{Limit: store.MaxPageLimit}
	for {
		ts, next, err := st.ListTokens(ctx, p)
		if err != nil {
			return "", fmt.Errorf("dev token: %w", err)
		}
		for _, t := range ts {
			if t.Name == devTokenName && t.RevokedAt == nil {
				if _, err := st.RevokeToken(ctx, t.ID, time.Now()); err != nil {
					return "", fmt.Errorf("dev token: %w", err)
				}
			}
		}
		if next == "" {
			break
		}
		p.Token = next
	}
	t, secret, hash, err := ferry.NewToken(ferry.Token{Name: devTokenName, Role: ferry.RoleAdmin, CreatedBy: "ferry dev"}, time.Now())
	if err != nil {
		return "", fmt.Errorf("dev token: %w", err)
	}
	if err := st.CreateToken(ctx, t, hash); err != nil {
		return "", fmt.Errorf("dev token: %w", err)
	}
	return secret, nil
}
