# shellcheck shell=bash
# Sourced by the repo's shell scripts: `--help`/`-h` as the first argument prints the script's
# header comment (its usage) and exits 0, before the script does anything.
help_if_asked() {
  case "${1:-}" in
    -h | --help)
      # The comment block after the shebang, without the leading "# ".
      awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
      exit 0
      ;;
  esac
}
