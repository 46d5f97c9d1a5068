//! What the command lines of the workspace's binaries owe their users: a help line for
//! every option and subcommand (a doc comment that slips onto another field leaves
//! one without, as `deviceflow-server --admin-token` once was).

/// The options, arguments and subcommands of `command` (its subcommands' too) that
/// have no help, as `"bin sub --option"`, after clap's own consistency checks.
pub fn without_help(command: &clap::Command) -> Vec<String> {
    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if arg.get_help().is_none() && !arg.is_hide_set() {
                missing.push(format!("{path} --{}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_name() != "help" {
                missing.push(sub_path.clone());
            }
            walk(sub, &sub_path, missing);
        }
    }
    command.clone().debug_assert();
    let mut missing = Vec::new();
    walk(command, command.get_name(), &mut missing);
    missing
}
