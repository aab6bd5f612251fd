"""Group access views: approve a new group, remove a member, revoke access."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404

from access.models import Group, Membership


def approve_new_group(request, group_id):
    group = get_object_or_404(Group, pk=group_id)
    group.approve(by=request.user)
    return JsonResponse({"status": "approved", "group": group.name})


def remove_group_member(request):
    membership = get_object_or_404(Membership, pk=request.POST["membership_id"])
    membership.remove(by=request.user)
    return JsonResponse({"status": "removed"})


@login_required
def group_overview(request, group_id):
    group = get_object_or_404(Group, pk=group_id)
    return JsonResponse({"group": group.name, "members": group.member_count()})
