"""Who is calling: one ``identify`` entry over the credential forms modgate accepts."""
