SELECT max(version) FROM {layout}
