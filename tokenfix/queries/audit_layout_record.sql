-- Record that a layout migration was applied.
INSERT INTO {layout} (version, tool_version) VALUES (%(version)s, %(tool_version)s) ON CONFLICT (version) DO NOTHING
