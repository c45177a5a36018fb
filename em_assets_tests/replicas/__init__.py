"""Local replicas of the outside services, speaking their real protocols with small real data."""
