-- A row as the app, or anyone holding its API key, would insert it through the Data API.
-- Runs as an API role in a savepoint that is always rolled back.
INSERT INTO {relation} ({columns}) VALUES ({values})
