"""Authorization: who is calling, and what their token lets them see and change."""
