"""How CRMs and managers reach Leadcast (BentoML service; arrives with the serving issue)."""
