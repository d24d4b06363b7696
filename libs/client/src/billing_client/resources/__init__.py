"""The API's resources, each with a sync and an async class over the same call builders."""
