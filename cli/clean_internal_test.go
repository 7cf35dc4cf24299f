package cli

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestCleanLeavesNothingATerminalActsOn(t *testing.T) {
	require.Equal(t, "plain text, é 日本 ✓", clean("plain text, é 日本 ✓"))
	require.Equal(t, "a b c d", clean("a\tb\nc\rd"))
	require.Equal(t, "\uFFFD[31mred \uFFFD]0;t\uFFFD \uFFFD31m \uFFFD \uFFFD \uFFFDx", clean("\x1b[31mred \x1b]0;t\x07 \u009b31m \x7f \u202e \xffx"))
	for r := rune(0); r < 0xa0; r++ {
		got := clean("a" + string(r) + "b")
		require.True(t, utf8.ValidString(got))
		if r < 0x20 || r >= 0x7f {
			require.NotContains(t, got, string(r), "%U", r)
		}
	}
}

func TestCutsNeverSplitACharacter(t *testing.T) {
	long := strings.Repeat("é", 100)
	got := oneLine(long, 60)
	require.True(t, utf8.ValidString(got))
	require.Equal(t, strings.Repeat("é", 59)+"…", got)
	require.Equal(t, "日本…", oneLine("日本語です", 3))
	require.Equal(t, "short", oneLine("short", 60))
	require.Equal(t, "日本語…", cut("日本語です", 5))
	require.Equal(t, "…", cut("日本語です", 1), "a tiny width does not panic")
	require.Equal(t, "日本", cut("日本", 3))
}
