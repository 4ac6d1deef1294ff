"""Built-in attack and detector plugins, written against workbench.api as a third party would."""
