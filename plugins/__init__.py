"""The built-in task plugins. The repository keeps them in plugins/; they install as the package
``toolkit_plugins`` (pyproject.toml maps the folder), a name no other project's "plugins" can shadow."""
