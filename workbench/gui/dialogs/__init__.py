"""Modal dialogs: Preferences, the signing-key manager (and its passphrase prompts), the
first-run welcome."""
