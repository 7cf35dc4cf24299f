package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultAPIURL is where the verbs look for the API when nothing says
// otherwise (the same default as the services' FERRY_API_URL).
const DefaultAPIURL = "http://127.0.0.1:8080"

// FileConfig is the client's configuration file: $FERRY_CONFIG, or
// $XDG_CONFIG_HOME/ferry/config.yaml (~/.config/ferry/config.yaml).
// The environment overrides it, and global flags override both.
type FileConfig struct {
	APIURL string `yaml:"api_url"`
	// Token is an API token. A file holding one must be readable by its
	// owner only.
	Token string `yaml:"token"`
	// TokenFile is a file holding the token (relative to the config
	// file's folder); it too must be readable by its owner only.
	TokenFile string `yaml:"token_file"`
	APICA     string `yaml:"api_ca"`
	// Output is the default -o of the read verbs.
	Output string `yaml:"output"`
}

// globalFlags are the flags every verb takes, wherever they stand.
var globalFlags = []struct{ name, arg, usage string }{
	{"config", "FILE", "the configuration file (FERRY_CONFIG; default $XDG_CONFIG_HOME/ferry/config.yaml)"},
	{"api-url", "URL", "the API's URL (FERRY_API_URL)"},
	{"api-ca", "FILE", "PEM certificate authorities of the API's TLS certificate (FERRY_API_CA)"},
	{"token-file", "FILE", "a file holding the API token (FERRY_TOKEN_FILE; FERRY_TOKEN holds the token itself)"},
}

// settings are what a verb runs with, resolved from the layers.
type settings struct {
	APIURL, Token, CAFile, Output string
	// TokenFrom says where the token came from, for messages.
	TokenFrom string
}

// configError is a configuration the verbs refuse: exit code 2.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// splitGlobal takes the global flags (--config FILE, --config=FILE ...)
// out of args, wherever they stand before a "--".
func splitGlobal(args []string) (map[string]string, []string, error) {
	got := map[string]string{}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		known := strings.HasPrefix(a, "-") && isGlobal(name)
		if !known {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, &configError{fmt.Sprintf("flag --%s needs a value", name)}
			}
			i++
			value = args[i]
		}
		got[name] = value
	}
	return got, rest, nil
}

func isGlobal(name string) bool {
	for _, g := range globalFlags {
		if g.name == name {
			return true
		}
	}
	return false
}

// resolve builds the settings: defaults, then the config file, then the
// environment (and the explicit values of o), then the global flags.
func resolve(o Options, flags map[string]string) (settings, error) {
	env := o.LookupEnv
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	getenv := func(k string) string { v, _ := env(k); return v }
	s := settings{APIURL: DefaultAPIURL}

	// The config file: --config, FERRY_CONFIG, or the usual place (only
	// with an environment to find it in).
	path, explicit := flags["config"], true
	if path == "" {
		path = getenv("FERRY_CONFIG")
	}
	if path == "" {
		explicit = false
		path = defaultConfigPath(getenv)
	}
	if path != "" {
		fc, err := readConfig(path, explicit)
		if err != nil {
			return s, err
		}
		if err := s.apply(fc, filepath.Dir(path), path); err != nil {
			return s, err
		}
	}

	// The environment, then what the caller set explicitly.
	envLayer := FileConfig{
		APIURL: getenv("FERRY_API_URL"), Token: getenv("FERRY_TOKEN"), TokenFile: getenv("FERRY_TOKEN_FILE"),
		APICA: getenv("FERRY_API_CA"), Output: getenv("FERRY_OUTPUT"),
	}
	if envLayer.Token != "" && envLayer.TokenFile != "" {
		envLayer.TokenFile = "" // the token itself wins over a file naming one
	}
	if err := s.apply(envLayer, "", "the environment"); err != nil {
		return s, err
	}
	if err := s.apply(FileConfig{APIURL: o.APIURL, Token: o.Token, APICA: o.CAFile}, "", "the environment"); err != nil {
		return s, err
	}

	// The global flags.
	if err := s.apply(FileConfig{APIURL: flags["api-url"], TokenFile: flags["token-file"], APICA: flags["api-ca"]}, "", "flag"); err != nil {
		return s, err
	}
	if s.Output != "" {
		if err := checkOutput("", s.Output); err != nil {
			return s, &configError{fmt.Sprintf("output %q (from the configuration) must be one of %s", s.Output, strings.Join(Outputs, ", "))}
		}
	}
	return s, nil
}

// apply lays one layer's set values over s; dir resolves relative paths.
func (s *settings) apply(l FileConfig, dir, from string) error {
	if l.Token != "" && l.TokenFile != "" {
		return &configError{from + ": token and token_file are both set: keep one"}
	}
	if l.APIURL != "" {
		s.APIURL = l.APIURL
	}
	if l.APICA != "" {
		s.CAFile = resolvePath(dir, l.APICA)
	}
	if l.Output != "" {
		s.Output = l.Output
	}
	switch {
	case l.Token != "":
		s.Token, s.TokenFrom = strings.TrimSpace(l.Token), from
	case l.TokenFile != "":
		p := resolvePath(dir, l.TokenFile)
		tok, err := readSecretFile(p)
		if err != nil {
			return err
		}
		s.Token, s.TokenFrom = tok, p
	}
	return nil
}

func defaultConfigPath(getenv func(string) string) string {
	if x := getenv("XDG_CONFIG_HOME"); x != "" {
		return filepath.Join(x, "ferry", "config.yaml")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "ferry", "config.yaml")
	}
	return ""
}

// resolvePath expands ~/ and makes a relative path relative to dir.
func resolvePath(dir, p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, rest)
		}
	}
	if dir != "" && !filepath.IsAbs(p) {
		return filepath.Join(dir, p)
	}
	return p
}

// readConfig reads a config file; a missing one is no error unless it was
// asked for. The file says where the CLI sends its token (api_url, api_ca,
// token_file), so it must be the user's own and nobody else may write it;
// one that holds a token must be private too, as ssh asks of a key.
func readConfig(path string, explicit bool) (FileConfig, error) {
	var fc FileConfig
	data, st, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return fc, nil
	}
	if err != nil {
		return fc, &configError{fmt.Sprintf("config: %v", err)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	decErr := dec.Decode(&fc)
	// Refuse an unsafe file before saying anything of its content; one
	// with a token gets the stricter check first, so that its fix
	// (chmod 600) is the only one needed.
	if fc.Token != "" {
		if err := private(path, st, "holds a token"); err != nil {
			return fc, err
		}
	}
	if err := trusted(path, st, "is a config file"); err != nil {
		return fc, err
	}
	if decErr != nil && !errors.Is(decErr, io.EOF) {
		return fc, &configError{fmt.Sprintf("config %s: %v", path, decErr)}
	}
	return fc, nil
}

// readSecretFile reads a token from a private file of the user's own.
func readSecretFile(path string) (string, error) {
	b, st, err := readFile(path)
	if err != nil {
		return "", &configError{fmt.Sprintf("token file: %v", err)}
	}
	if err := private(path, st, "is a token file"); err != nil {
		return "", err
	}
	if err := trusted(path, st, "is a token file"); err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", &configError{fmt.Sprintf("token file %s is empty", path)}
	}
	return tok, nil
}

// readFile reads a file and describes the file it read: the checks judge
// the very file that was read, not one put in its place since.
func readFile(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return b, st, nil
}

// trusted refuses a file that another user owns (where the platform tells)
// or that its group or others may write: whoever can change it can point
// the CLI, and the token it sends, at a server of their own.
func trusted(path string, st fs.FileInfo, what string) error {
	if uid, other, ok := ownedByOther(st); ok && other {
		return &configError{fmt.Sprintf("%s %s but belongs to user %d, not to you (user %d): refused; use a file of your own (or run chown %d %s)",
			path, what, uid, os.Getuid(), os.Getuid(), path)}
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return &configError{fmt.Sprintf("%s %s but others may write it (mode %04o): refused; run chmod go-w %s", path, what, perm, path)}
	}
	return nil
}

// private refuses a file that its group or others may read or write.
func private(path string, st fs.FileInfo, what string) error {
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return &configError{fmt.Sprintf("%s %s but others may read it (mode %04o): refused; run chmod 600 %s", path, what, perm, path)}
	}
	return nil
}
